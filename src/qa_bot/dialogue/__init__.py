"""Conversations without an LLM: follow-up cues (:mod:`.cues`, pure functions of text), what a
chat remembers (:mod:`.memory`), asking with the previous topic (:mod:`.asking`), who may ask
and how often (:mod:`.access`), and the scoring of dialogues (:mod:`.evaluation`).

Nothing here touches the network, the terminal or Telegram.
"""
