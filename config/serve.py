"""Start one worker: `python -m config.serve -b HOST -p PORT` (the launcher is transport.server)."""

from transport.server import main

if __name__ == "__main__":
    main()
