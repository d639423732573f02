"""What every integration shares: recipe loading and checks, distributed set-up, the training loop's
recipe hooks, the final sparsity report, checkpoints and ONNX export."""
