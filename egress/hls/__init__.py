"""Low-Latency HLS: playlists (``playlist``), CMAF fragments (``cmaf``), the packager."""
