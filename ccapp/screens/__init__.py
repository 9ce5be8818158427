"""Textual screens and widgets; they read the store and talk to jobs, never to models."""
