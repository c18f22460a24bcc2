"""Everything about Zalo's Official Account API that more than one service needs."""
