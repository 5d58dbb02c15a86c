from dnncli.cli import main

main()
