"""`kubectl virtstack`: CloudStack's VM actions as edits of the user's own spec fields."""
