"""The live side of calls: what a card says (cards.py), how it is sent (push.py), who receives it
(groups.py) and the sockets that receive it (consumers.py, urls.py)."""
