"""Side panels: model picker, draft settings, live speculation stats."""
