from ostream.cli import main

main()
