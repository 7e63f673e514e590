"""Data sources: 1D toy targets and MNIST."""
