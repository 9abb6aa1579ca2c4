from .embed import resize_pos_embed, resize_relative_position_bias_table

__all__ = ['resize_pos_embed', 'resize_relative_position_bias_table']
