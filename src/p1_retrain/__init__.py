"""Local-only tooling for the Prediction One retraining stack: the emulator, the local stack, the CLI."""
