"""The Telegram front, in layers: what the bot keeps (:mod:`.state`), how it writes
(:mod:`.markup`, :mod:`.render`), how it sends (:mod:`.sending`), its buttons
(:mod:`.buttons`), questions (:mod:`.questions`) and commands (:mod:`.handlers`), and the
application that ties them to :class:`~qa_bot.service.QAService` (:mod:`.app`).
"""
