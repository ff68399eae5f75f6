"""Media control plane: the SFU node registry model, meeting placement and media tokens.

Everything here runs in the control plane (Lambda) except what a node needs to verify tokens
(`townhall.media.tokens.MediaTokenVerifier`, `townhall.media.jwks`) and the registry item model
(`townhall.media.nodes.MediaNode`), which `media_fleet/` imports too.
"""
