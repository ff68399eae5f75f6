"""The control plane's entities as plain dataclasses: what a meeting, a session, a participant
and a chat message are, with no storage or transport in them. Services decide with them;
`townhall.store` maps them to and from DynamoDB items."""
