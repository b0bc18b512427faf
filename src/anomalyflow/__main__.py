from anomalyflow.cli import main

main()
