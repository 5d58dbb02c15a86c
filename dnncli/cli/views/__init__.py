"""Everything the command line shows, by family: rich views on a terminal, plain text elsewhere. No number is
ever cut; every table fits the terminal or says what it left out."""
