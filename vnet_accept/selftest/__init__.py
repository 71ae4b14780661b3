"""The gate's self-test: a narrow VNet trained on synthetic scans, the clean chain built from it, and a catalogue
of planted defects, each of which the criterion meant to catch it must fail (issue 8).

* :mod:`vnet_accept.selftest.weights` holds the model's shipped weights (``selftest_model.npz``) and the hash of
  the recipe that produced them, and regenerates them (``python -m vnet_accept.selftest.weights --write``);
* :mod:`vnet_accept.selftest.chain` builds the clean artifacts once (cached by their recipe): the trained
  checkpoint (the shipped weights, or trained when the recipe changed), held-out synthetic scans and their tiles,
  the ONNX exports, a results folder written as ais_bench writes it, a PyTorch reference run and the port's
  performance files;
* :mod:`vnet_accept.selftest.defects` plants each defect into a copy of a clean artifact and judges it with the
  gate's own judge functions (:mod:`vnet_accept.judge`), and scores the catalogue (caught / planted, false alarms
  on the clean chain).
"""
