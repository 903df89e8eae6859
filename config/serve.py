"""Start one worker: `python -m config.serve -b HOST -p PORT` (the launcher is transport.server)."""

from rooms.protocol import CLOSE_NOT_READING
from transport.server import main


def serve() -> None:
    """The launcher, told the protocol's close code for a socket that stopped reading."""
    main(not_reading_close=CLOSE_NOT_READING)


if __name__ == "__main__":
    serve()
