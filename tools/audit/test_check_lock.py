"""Semver matching of check_lock.py against Cargo's rules (python3 tools/audit/test_check_lock.py)."""
import unittest

from check_lock import affected, matches


class Matching(unittest.TestCase):
    def test_comparators(self):
        self.assertTrue(matches("0.2.10", ">= 0.2.10"))
        self.assertFalse(matches("0.2.9", ">= 0.2.10"))
        self.assertTrue(matches("1.4.0", ">= 1.2, < 1.5"))
        self.assertFalse(matches("1.5.0", ">= 1.2, < 1.5"))
        self.assertTrue(matches("0.9.34+deprecated", "= 0.9.34"))
        self.assertTrue(matches("1.0.0", "> 1.0.0-rc.1"))

    def test_caret_and_tilde(self):
        # Caret keeps the first non-zero part; bare versions are caret requirements.
        self.assertTrue(matches("0.3.9", "^0.3.1"))
        self.assertFalse(matches("0.4.0", "^0.3.1"))
        self.assertFalse(matches("0.0.4", "^0.0.3"))
        self.assertTrue(matches("1.9.0", "1.2"))
        self.assertFalse(matches("2.0.0", "1.2"))
        self.assertTrue(matches("1.2.9", "~1.2.3"))
        self.assertFalse(matches("1.3.0", "~1.2.3"))

    def test_affected(self):
        adv = {"patched": [">= 0.2.10"], "unaffected": ["< 0.2.0"]}
        self.assertTrue(affected("0.2.5", adv))
        self.assertFalse(affected("0.2.10", adv))
        self.assertFalse(affected("0.1.9", adv))
        # No patched version at all (an unmaintained crate): every version.
        self.assertTrue(affected("9.9.9", {"patched": [], "unaffected": []}))


if __name__ == "__main__":
    unittest.main()
