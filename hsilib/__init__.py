"""hsilib: hyperspectral image classification and network compression.

The package behind the book that rebuilds *A Benchmark Study of Neural
Network Compression Methods for Hyperspectral Image Classification*.
"""

__version__ = "0.1.0"
