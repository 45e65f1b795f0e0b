"""consult.vocabulary is the app's one definition of its vocabularies; where ner_engine (which never imports the
app) has its own copy, they must agree."""
from consult import vocabulary
from ner_engine.context.assertion import ASSERTIONS as ENGINE_ASSERTIONS


def test_the_apps_assertions_are_the_engines():
    assert set(vocabulary.ASSERTIONS) == set(ENGINE_ASSERTIONS)


def test_every_urgency_level_has_a_label_and_the_levels_are_ordered_most_urgent_first():
    assert list(vocabulary.URGENCY_LABELS) == list(vocabulary.URGENCY_LEVELS)
    assert vocabulary.urgency_max("self_care", "emergency", None) == "emergency"
    assert vocabulary.urgency_rank(None) == len(vocabulary.URGENCY_LEVELS)


def test_settings_and_the_launcher_use_the_one_queue_and_demo_accounts():
    from django.conf import settings

    from tools import launcher

    assert settings.NER_QUEUE == launcher.NER_QUEUE == vocabulary.NER_QUEUE
    assert launcher.DEMO_ACCOUNTS is vocabulary.DEMO_ACCOUNTS
