"""The adversarial security suite: attack corpus, ACS runs, differential oracles, fuzzing."""
