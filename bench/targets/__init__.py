"""The SFUs the benchmarks drive: our node (``ours``), Janus (``janus``), a naive relay
(``naive_relay``). Each starts its server on loopback, reports the process to meter, and stops
it (then kills it) whatever happened."""
