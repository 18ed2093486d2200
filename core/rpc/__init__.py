"""llama.cpp's RPC backend: workers on other machines that lend memory and compute.

``endpoints`` parses ``host:port`` lists and tensor-split proportions, ``probe``
asks a worker over the wire whether it answers and how much memory it has,
``native`` registers workers with ggml and builds the device lists a model loads
onto, ``server`` turns this process into a worker.
"""
