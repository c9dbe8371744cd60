# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for the benchmarks: wall seconds of each task (all hosts together), printed at the end of the run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'tasktime'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.loaded = time.monotonic()
        self.current = None
        self.started = None
        self.rows = []

    def _close(self):
        if self.current:
            self.rows.append((time.monotonic() - self.started, self.current))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = task.get_name()
        self.started = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        for seconds, name in self.rows:
            self._display.display('%6.2f  %s' % (seconds, name))
        self._display.display('%6.2f  (since the callback was loaded)' % (time.monotonic() - self.loaded))
