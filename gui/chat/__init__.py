"""The chat area: message view, input, conversations sidebar, answer controller."""
