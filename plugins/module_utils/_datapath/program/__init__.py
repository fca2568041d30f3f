"""Programs: compile C, open an object, write its load-time config, load and verify it, fingerprint what runs."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
