"""pytest fixtures for the Azure target (ARM fake, ACR-style registry): in progress."""
