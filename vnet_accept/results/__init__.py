"""Result folders: writing model outputs as the inference tools do, finding and validating them, judging them.

* :mod:`~vnet_accept.results.layouts` - the three layouts (ais_bench, legacy benchmark, npy), detection, validation;
* :mod:`~vnet_accept.results.inference` - batched inference over a prepared test set (shards, resume, sinks);
* :mod:`~vnet_accept.results.postprocess` - judging a folder against the masks (the port's line, CI, views);
* :mod:`~vnet_accept.results.port_style` - the port's post-processing loop, kept as the benchmark baseline;
* :mod:`~vnet_accept.results.synthetic` - ground truth and outputs with known errors for tests and benchmarks;
* :mod:`~vnet_accept.results.cli` - ``vnet-accept infer`` and ``vnet-accept postprocess``.
"""
