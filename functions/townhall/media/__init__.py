"""Media control plane: which node hosts a meeting, media tokens, and calls to the nodes.

The decisions live here: `nodes` (which nodes accept a meeting, reservations), `placement`
(which node hosts it, moves), `access` (what a participant gets, removal and end), `tokens`
(issuing, with the private key), `node_client` (the nodes' control API). What a node shares
with the control plane (the registry item, token claims and their verification, JWKS, the
control API's wire form) is in `contracts`; the DynamoDB tables are read and written through
`townhall.store.media_nodes` and `townhall.store.placement`.
"""
