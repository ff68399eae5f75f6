"""The SFU node service: the control API, the rooms it hosts, and the worker processes.

See docs/media-node.md for the process model and the API.
"""
