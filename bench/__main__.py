"""``python -m bench [--full | --smoke]``: prints the table, writes bench/results/*.json."""

from bench.run import main

if __name__ == "__main__":
    main()
