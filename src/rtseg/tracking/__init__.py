"""Run records, W&B helpers, the local leaderboard."""
