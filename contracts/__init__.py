"""What the control plane (functions/) and the media fleet (media_fleet/) agree on.

Both sides import this package, and neither imports the other: a contract changes here, once,
and both follow. It holds only definitions and pure functions (no AWS client, no I/O), so the
media node ships it without the control plane.

| module | what |
|---|---|
| `media_nodes` | the registry item (`MediaNode`) and its TTL rules |
| `media_tokens` | media and revocation token claims, and their verification with public keys |
| `tokens` | EdDSA JWT verification shared by every token kind |
| `jwks` | the JWKS the control plane publishes and a node reads |
| `node_api` | the node control API's paths, bodies and error codes |
| `errors` | exceptions both sides raise (`TokenRejected`) |
| `signaling_events` | the catalogue of signaling events |

`pyproject.toml`'s `[tool.importlinter]` keeps it that way: this package imports neither
`townhall`, `handlers` nor `media_fleet`, nor an AWS SDK.
"""
