"""The load generator shared by the SFU benchmarks: the clip, the client process, the meters."""
