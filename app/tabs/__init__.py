"""The window's tabs: Live (the panes in docks), Network (every layer at once) and Embeddings."""
