"""C2-Syn: synthetic preference pairs (triggered corrections of harmful answers) and their export."""
