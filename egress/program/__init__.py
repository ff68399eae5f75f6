"""What the program worker encodes: a source of video and audio frames (phase 1: synthetic)."""
