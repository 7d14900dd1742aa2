"""``python -m messenger_client``: the client commands on their own."""

from messenger_client.cli import main

main()
