"""The Discord layer: a thin translation between Discord and the study core."""
