"""Collectors that are not plain rollouts: rejection-sampling fine-tuning (RFT) and EEF."""
