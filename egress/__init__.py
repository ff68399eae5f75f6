"""The broadcast tier's program worker and LL-HLS origin (issue 14; docs/broadcast.md).

The only place in the system that decodes or encodes media: a program is encoded once into an
ABR ladder of CMAF renditions, and served as Low-Latency HLS to a CDN.
"""
