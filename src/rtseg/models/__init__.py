"""Networks: the seed's baseline, factories over smp and torchvision, and paper networks."""
