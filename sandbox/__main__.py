from prefect_iterable.sandbox.server import main

main()
