"""The type system: BTF type ids to codecs, and the codecs that turn text into the bytes of keys, values and config."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
