"""Venues through ccxt: the client and its secrets, retries and bans, the order journal, client
order ids, the broker, streamed market data, and history downloads."""
