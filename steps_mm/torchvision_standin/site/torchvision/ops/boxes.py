"""Empty: mmpretrain's box utilities import it for grounding models only."""
