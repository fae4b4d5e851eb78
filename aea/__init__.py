"""AEA (Adversarial Erasing Attention) person re-identification reproduction harness."""

__version__ = "0.1.0"
