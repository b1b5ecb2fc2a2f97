"""The time zones people may choose: every place of the tz database, no legacy alias."""

from tidings.core import locales


def test_the_time_zone_list_has_places_and_no_deprecated_aliases():
    zones = locales.time_zones()
    assert zones[0] == "UTC"
    assert {"Europe/Paris", "America/New_York", "Asia/Kolkata", "Europe/Kyiv"} <= set(zones)
    for alias in ("US/Eastern", "GB", "Asia/Calcutta", "Europe/Kiev", "EST5EDT", "Etc/GMT+2"):
        assert alias not in zones
        assert not locales.is_time_zone(alias)


def test_an_unknown_language_falls_back_to_the_default():
    assert locales.supported_language("fr") == "fr"
    assert locales.supported_language("de") == "en"
    assert locales.supported_language(None) == "en"
