"""Model and dataset card templates for checkpoints shared on the Hugging Face Hub."""
