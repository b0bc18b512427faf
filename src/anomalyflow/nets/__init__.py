"""Networks: pretrained CNN backbones (torchvision), EfficientAD's PDN and autoencoder."""
